#include "helpers.hpp"
TEST_CASE("placeholder") { CHECK(true); }
