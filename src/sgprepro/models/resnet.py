"""ResNets: ResNet-20 for CIFAR (He et al. 2016) and ResNet-50 for ImageNet (torchvision)."""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity shortcut (He et al. 2016, Sec. 4.2, option A).

    When the block halves the resolution and doubles the channels, the shortcut subsamples by 2
    and zero-pads the new channels, which adds no parameters.

    Args:
        in_channels: input channels.
        out_channels: output channels.
        stride: 1, or 2 to halve the resolution.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.stride = stride
        self.extra_channels = out_channels - in_channels

    def forward(self, x: Tensor) -> Tensor:
        """Map ``(B, C_in, H, W)`` to ``(B, C_out, H / stride, W / stride)``."""
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        shortcut = x[:, :, :: self.stride, :: self.stride] if self.stride > 1 else x
        if self.extra_channels:
            half = self.extra_channels // 2
            shortcut = F.pad(shortcut, (0, 0, 0, 0, half, self.extra_channels - half))
        return F.relu(out + shortcut)


class CifarResNet(nn.Module):
    """The CIFAR ResNet of He et al. 2016 (Sec. 4.2): 6n+2 layers; ResNet-20 is ``n = 3``.

    A 3x3 conv, three stages of ``n`` basic blocks at ``width, 2 width, 4 width`` channels
    (strides 1, 2, 2), global average pooling and a linear head. With ``width = 16`` and 10
    classes ResNet-20 has 269,722 parameters.

    Args:
        in_channels: input channels (3 for CIFAR-10).
        num_classes: number of classes.
        blocks_per_stage: ``n``.
        width: channels of the first stage.
    """

    def __init__(
        self, in_channels: int, num_classes: int, blocks_per_stage: int, width: int
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(width)
        blocks: list[nn.Module] = []
        cin = width
        for stage, cout in enumerate((width, 2 * width, 4 * width)):
            for i in range(blocks_per_stage):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(cin, cout, stride))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        """Map images ``(B, C, H, W)`` to logits ``(B, num_classes)``."""
        out = F.relu(self.bn(self.conv(x)))
        out = self.blocks(out)
        return self.fc(F.adaptive_avg_pool2d(out, 1).flatten(1))


def resnet50(num_classes: int) -> nn.Module:
    """torchvision's ResNet-50 with the paper's initialisation (Sec. 4; Goyal et al. 2017).

    The last BatchNorm gamma of every bottleneck starts at zero (``zero_init_residual``), so each
    residual block starts as the identity, and the fc weights are drawn from N(0, 0.01^2) with a
    zero bias. With 1000 classes it has 25,557,032 parameters.

    Args:
        num_classes: number of classes.

    Returns:
        The model, mapping ``(B, 3, H, W)`` to logits ``(B, num_classes)``.
    """
    from torchvision.models import resnet50 as tv_resnet50  # torchvision imports in ~2 s

    model = tv_resnet50(weights=None, zero_init_residual=True, num_classes=num_classes)
    nn.init.normal_(model.fc.weight, mean=0.0, std=0.01)
    nn.init.zeros_(model.fc.bias)
    return model
