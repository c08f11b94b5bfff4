// The readers and writers of the data layer: .npy and .npz (numpy's formats, also used by checkpoints),
// IDX (MNIST's) and CSV; all throw FileError naming the file and what is wrong with it.
#pragma once

#include "tapegrad/nn/io/csv.hpp"
#include "tapegrad/nn/io/file.hpp"
#include "tapegrad/nn/io/idx.hpp"
#include "tapegrad/nn/io/npy.hpp"
#include "tapegrad/nn/io/npz.hpp"
