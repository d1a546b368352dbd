#include "check.h"
// PLACEHOLDER
TEST(placeholder) { CHECK(false); }
CK_TEST_MAIN()
