// The autodiff layer: Var, the tape, the differentiable ops and the gradient checks.
#pragma once

#include "tapegrad/autodiff/audit.hpp"
#include "tapegrad/autodiff/blas.hpp"
#include "tapegrad/autodiff/distributed.hpp"
#include "tapegrad/autodiff/error.hpp"
#include "tapegrad/autodiff/gradcheck.hpp"
#include "tapegrad/autodiff/op.hpp"
#include "tapegrad/autodiff/ops.hpp"
#include "tapegrad/autodiff/parallel.hpp"
#include "tapegrad/autodiff/tape.hpp"
#include "tapegrad/autodiff/var.hpp"
