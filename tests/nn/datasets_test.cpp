#include "helpers.hpp"
TEST_CASE("placeholder: being written") { CHECK(1 + 1 == 2); }
