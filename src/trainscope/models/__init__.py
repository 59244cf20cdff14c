"""Image classifiers built from `conf/model/*.yaml`; each takes the data's input shape and class count."""

from trainscope.models.cnn import SmallCNN
from trainscope.models.lenet import LeNet
from trainscope.models.mlp import MLP
from trainscope.models.resnet import resnet18_small
from trainscope.models.timm_model import timm_model

__all__ = ["MLP", "LeNet", "SmallCNN", "resnet18_small", "timm_model"]
