/* The peer of convkit's allreduce in npm run bench:distributed: MPI_Allreduce (in place, float,
 * sum) over MPI_COMM_WORLD as a plain MPI program calls it. Prints one JSON line on rank 0:
 * {"sizes": [floats...], "seconds": [per call...]}. Usage: allreduce FLOATS... */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char** argv) {
  MPI_Init(&argc, &argv);
  int rank;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (rank == 0) printf("{\"sizes\":[");
  for (int i = 1; i < argc; i++) if (rank == 0) printf("%s%s", i > 1 ? "," : "", argv[i]);
  if (rank == 0) printf("],\"seconds\":[");
  for (int i = 1; i < argc; i++) {
    long n = atol(argv[i]);
    float* buf = malloc(sizeof(float) * (size_t)n);
    for (long j = 0; j < n; j++) buf[j] = (float)j;
    int reps = n >= (1 << 22) ? 10 : n >= (1 << 18) ? 50 : 500;
    for (int w = 0; w < 3; w++) MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    MPI_Barrier(MPI_COMM_WORLD);
    double t0 = MPI_Wtime();
    for (int r = 0; r < reps; r++) MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    double dt = (MPI_Wtime() - t0) / reps;
    if (rank == 0) printf("%s%.9f", i > 1 ? "," : "", dt);
    free(buf);
  }
  if (rank == 0) printf("]}\n");
  MPI_Finalize();
  return 0;
}
