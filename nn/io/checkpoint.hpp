// Checkpoints: an .npz that numpy.load opens. Each parameter under its full name (`encoder.0.weight`),
// the optimizer's buffers under `optimizer/<buffer>.<parameter>`, and under `config` a JSON text with
// the format, the dtype, the caller's model configuration and the optimizer's kind, options and steps:
//
//   f = numpy.load("model.npz"); f["encoder.0.weight"]; json.loads(str(f["config"]))
//
// Written atomically (temporary file in the same folder, fsync, rename): a crash mid-write leaves the
// previous checkpoint whole. Loading checks names, shapes and dtypes against the model and the optimizer
// and says exactly what differs, changing nothing unless everything fits.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "tapegrad/nn/io/file.hpp"
#include "tapegrad/nn/module.hpp"
#include "tapegrad/nn/io/npz.hpp"
#include "tapegrad/nn/optim.hpp"

namespace tapegrad::nn {

// Arrays a caller keeps beside the parameters, under names with a prefix of its own: the trainer's best
// weights are "best/encoder.0.weight", ...
template <class T>
using NamedArrays = std::vector<std::pair<std::string, Array<T>>>;

// `model_config` is JSON text describing the model (how to rebuild it); "{}" if there is nothing to say.
// `extra` is JSON text the caller wants back on resume (epoch, scheduler, data seed); "{}" for nothing.
// `arrays` (float or double, whatever the model's dtype) go in under their own names, which must not be
// a parameter's or start with "optimizer/".
template <class T>
void save_checkpoint(const std::string& path, const Module<T>& model, const Optimizer<T>* optimizer = nullptr,
                     const std::string& model_config = "{}", const std::string& extra = "{}",
                     const std::vector<NpzEntry>& arrays = {});

// The arrays of a checkpoint whose names start with `prefix`, the prefix removed, in the file's order.
// ValueError for one of another dtype.
template <class T>
NamedArrays<T> read_checkpoint_arrays(const std::string& path, std::string_view prefix);

// Restores the parameters and, when given, the optimizer. Throws FileError when the file cannot be read
// or is not a checkpoint, ValueError when it does not fit: `checkpoint runs/a/model.npz: encoder.0.weight
// has shape (64, 16), file has (16, 64)`, every difference listed.
template <class T>
void load_checkpoint(const std::string& path, Module<T>& model, Optimizer<T>* optimizer = nullptr);

// The `config` JSON text of a checkpoint, to rebuild its model before loading it: {"format", "version",
// "dtype", "model", "optimizer", "extra", "parameters"}.
std::string read_checkpoint_config(const std::string& path);

extern template void save_checkpoint<float>(const std::string&, const Module<float>&, const Optimizer<float>*,
                                            const std::string&, const std::string&, const std::vector<NpzEntry>&);
extern template void save_checkpoint<double>(const std::string&, const Module<double>&, const Optimizer<double>*,
                                             const std::string&, const std::string&, const std::vector<NpzEntry>&);
extern template NamedArrays<float> read_checkpoint_arrays<float>(const std::string&, std::string_view);
extern template NamedArrays<double> read_checkpoint_arrays<double>(const std::string&, std::string_view);
extern template void load_checkpoint<float>(const std::string&, Module<float>&, Optimizer<float>*);
extern template void load_checkpoint<double>(const std::string&, Module<double>&, Optimizer<double>*);

}  // namespace tapegrad::nn
