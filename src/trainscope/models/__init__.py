"""Models built from `conf/model/*.yaml`: image classifiers take the data's input shape and class count, language
models its vocabulary size and block size."""

from trainscope.models.cnn import SmallCNN
from trainscope.models.gpt import GPT
from trainscope.models.hf import HuggingFaceCausalLM
from trainscope.models.lenet import LeNet
from trainscope.models.mlp import MLP
from trainscope.models.resnet import resnet18_small
from trainscope.models.timm_model import timm_model

__all__ = ["GPT", "HuggingFaceCausalLM", "MLP", "LeNet", "SmallCNN", "resnet18_small", "timm_model"]
