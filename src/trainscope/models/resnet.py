"""torchvision's ResNet-18, adapted to small (28-32 px) images."""

from collections.abc import Sequence

from torch import nn


def resnet18_small(input_shape: Sequence[int], num_classes: int) -> nn.Module:
    """ResNet-18 with a 3x3 stride-1 stem and no max-pool: the ImageNet stem would shrink 32 px to 8 px."""
    from torchvision.models import resnet18  # imported here: torchvision costs seconds, other models skip it

    model = resnet18(weights=None, num_classes=num_classes)
    model.conv1 = nn.Conv2d(input_shape[0], 64, kernel_size=3, stride=1, padding=1, bias=False)
    model.maxpool = nn.Identity()
    return model
