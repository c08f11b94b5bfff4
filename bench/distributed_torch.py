#!/usr/bin/python3
"""bench/distributed_bench.cpp's training in PyTorch: the dense Fashion-MNIST autoencoder of train_torch.py
(784-256-64-256-784, ReLU, sigmoid output, float32, Adam lr 1e-3, batch 128, pixels / 255), alone or as
--ranks processes of DistributedDataParallel over the gloo backend (Debian's python3-torch has no MPI
backend). As tapegrad does, every process shuffles the same way each epoch and takes its contiguous part
of each global batch of 128; DDP averages the gradients over the processes, which for equal parts (128
and the last batch of 96 split evenly in 2) is the gradient of the whole batch.

Prints one JSON object: each epoch's seconds (training only), the last epoch's loss and the test MSE.

  distributed_torch.py [--ranks N] [--threads N] [--epochs N]
"""
import argparse
import json
import os
import socket
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import train_torch  # noqa: E402  (sets OpenBLAS's threads from --threads before torch loads)
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(rank, args, port, results):
    torch.set_num_threads(args.threads)
    if args.ranks > 1:
        os.environ["MASTER_ADDR"] = "127.0.0.1"
        os.environ["MASTER_PORT"] = str(port)
        dist.init_process_group("gloo", rank=rank, world_size=args.ranks)
    torch.manual_seed(0)
    train = train_torch.load_images("train")
    model = train_torch.Autoencoder(train.shape[1], "relu")
    net = torch.nn.parallel.DistributedDataParallel(model) if args.ranks > 1 else model
    adam = torch.optim.Adam(net.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    seconds = []
    loss_sum = 0.0
    for _ in range(args.epochs):
        start = time.perf_counter()
        order = torch.randperm(train.shape[0], generator=generator)
        loss_sum = 0.0
        for first in range(0, train.shape[0], 128):
            rows = order[first:first + 128]
            part = rows[len(rows) * rank // args.ranks:len(rows) * (rank + 1) // args.ranks]
            x = train[part]
            adam.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(net(x), x)
            loss.backward()
            adam.step()
            loss_sum += loss.item() * x.shape[0]
        seconds.append(time.perf_counter() - start)
    if rank == 0:
        model.eval()
        test = train_torch.load_images("test")
        with torch.no_grad():
            mse = torch.nn.functional.mse_loss(model(test), test).item()
        results.put({"ranks": args.ranks, "threads": args.threads, "torch": torch.__version__,
                     "backend": "gloo" if args.ranks > 1 else "none", "epoch_seconds": seconds,
                     "seconds_per_epoch": statistics.median(seconds),
                     "train_loss_rank0": loss_sum / (train.shape[0] / args.ranks), "test_mse": mse})
    if args.ranks > 1:
        dist.destroy_process_group()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ranks", type=int, default=1, help="processes (DDP over gloo when above 1)")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch's threads in each process")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs; the median is reported")
    args = parser.parse_args()
    context = mp.get_context("spawn")
    results = context.Queue()
    port = free_port()
    if args.ranks == 1:
        worker(0, args, port, results)
    else:
        mp.start_processes(worker, args=(args, port, results), nprocs=args.ranks, start_method="spawn")
    print(json.dumps(results.get()))


if __name__ == "__main__":
    main()
