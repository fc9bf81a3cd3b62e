// slirp/ldns_cxx.h: <ldns/ldns.h> for C++ files. ldns 1.8's common.h defines `bool`, `true`
// and `false` as macros unless __bool_true_false_are_defined is set, which <stdbool.h> does (in
// C++ it defines nothing else): without it, a standard header included after ldns sees
// `bool(x) <=> false` turned into `_Bool(x) <=> 0`. Include this, never <ldns/ldns.h>.
#pragma once

// <stdbool.h> must come first: the include sorter is kept off these two lines.
// clang-format off
#include <stdbool.h>  // NOLINT(modernize-deprecated-headers)
#include <ldns/ldns.h>
// clang-format on
