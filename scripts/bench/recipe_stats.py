#!/usr/bin/python3
"""Compares two sweeps of the seeds' MNIST recipe written by recipe-seeds.js (e.g. convkit and
PyTorch): the per-seed table as Markdown, then for the test accuracy and the final-epoch training
loss the means, sample standard deviations, the difference of means with Welch's 95% confidence
interval, Welch's t-test and the two-sided Mann-Whitney U test (scipy.stats). The seeds are
independent runs of each library (a seed does not give the two libraries the same initial weights
or batch order), so the samples are compared unpaired.
  /usr/bin/python3 scripts/bench/recipe_stats.py A.json B.json
"""
import json, statistics, sys
from scipy import stats


def describe(name, a, b, la, lb, digits):
    ma, mb = statistics.mean(a), statistics.mean(b)
    sa, sb = statistics.stdev(a), statistics.stdev(b)
    va, vb = sa * sa / len(a), sb * sb / len(b)
    df = (va + vb) ** 2 / (va * va / (len(a) - 1) + vb * vb / (len(b) - 1))
    half = stats.t.ppf(0.975, df) * (va + vb) ** 0.5
    t = stats.ttest_ind(a, b, equal_var=False)
    u = stats.mannwhitneyu(a, b, alternative='two-sided')
    f = f'{{:.{digits}f}}'
    print(f'{name}: {la} mean {f.format(ma)} (sd {f.format(sa)}, n {len(a)}), {lb} mean {f.format(mb)} (sd {f.format(sb)}, n {len(b)})')
    print(f'  difference {la} - {lb}: {f.format(ma - mb)}, 95% CI [{f.format(ma - mb - half)}, {f.format(ma - mb + half)}] (Welch, df {df:.1f})')
    print(f'  Welch t = {t.statistic:.2f}, p = {t.pvalue:.3f}; Mann-Whitney U = {u.statistic:.1f}, p = {u.pvalue:.3f}')


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    a, b = (json.load(open(p)) for p in sys.argv[1:])
    la, lb = a['impl'], b['impl']
    seeds = sorted(set(map(int, a['runs'])) | set(map(int, b['runs'])))
    cell = lambda r, s, k, fmt: fmt.format(r['runs'][str(s)][k]) if str(s) in r['runs'] else ''
    print(f'| seed | {la} test accuracy | {lb} test accuracy | {la} final loss | {lb} final loss |')
    print('|---|---|---|---|---|')
    for s in seeds:
        print(f'| {s} | {cell(a, s, "testAccuracy", "{:.2f}%")} | {cell(b, s, "testAccuracy", "{:.2f}%")} '
              f'| {cell(a, s, "finalLoss", "{:.4f}")} | {cell(b, s, "finalLoss", "{:.4f}")} |')
    col = lambda r, k: [v[k] for v in r['runs'].values()]
    mean = lambda xs, fmt: fmt.format(statistics.mean(xs))
    print(f'| mean | {mean(col(a, "testAccuracy"), "{:.2f}%")} | {mean(col(b, "testAccuracy"), "{:.2f}%")} '
          f'| {mean(col(a, "finalLoss"), "{:.4f}")} | {mean(col(b, "finalLoss"), "{:.4f}")} |')
    print()
    describe('test accuracy (%)', col(a, 'testAccuracy'), col(b, 'testAccuracy'), la, lb, 3)
    describe('final-epoch training loss', col(a, 'finalLoss'), col(b, 'finalLoss'), la, lb, 4)


if __name__ == '__main__':
    main()
