"""Measuring restoration: metrics, classical baselines, the benchmark runner, reports."""

from vlir.evaluation.baselines import BASELINES, Method, Sample, baselines_for, get_method
from vlir.evaluation.metrics import modcrop, psnr, psnr_gt_mean, rgb_to_y, ssim
from vlir.evaluation.runner import BenchmarkResult, run_benchmark
from vlir.evaluation.tasks import Task, parse_task

__all__ = [
    "BASELINES",
    "BenchmarkResult",
    "Method",
    "Sample",
    "Task",
    "baselines_for",
    "get_method",
    "modcrop",
    "parse_task",
    "psnr",
    "psnr_gt_mean",
    "rgb_to_y",
    "run_benchmark",
    "ssim",
]
