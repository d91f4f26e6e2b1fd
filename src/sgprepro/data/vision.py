"""Image datasets read with torchvision: CIFAR-10 and ImageNet (Sec. 4 of Assran et al. 2019)."""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset
from torchvision import datasets, transforms

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def cifar10_transforms() -> tuple[transforms.Compose, transforms.Compose]:
    """Standard CIFAR-10 augmentation (He et al. 2016): pad-4 random crop and horizontal flip.

    Returns:
        ``(train, val)`` transforms mapping a PIL image to a normalised float tensor
        ``(3, 32, 32)``.
    """
    normalize = transforms.Normalize(CIFAR10_MEAN, CIFAR10_STD)
    train = transforms.Compose(
        [
            transforms.RandomCrop(32, padding=4),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            normalize,
        ]
    )
    val = transforms.Compose([transforms.ToTensor(), normalize])
    return train, val


def imagenet_transforms() -> tuple[transforms.Compose, transforms.Compose]:
    """The paper's ImageNet crops: RandomResizedCrop 224 + flip; val Resize 256 + CenterCrop 224.

    Returns:
        ``(train, val)`` transforms mapping a PIL image to a normalised float tensor
        ``(3, 224, 224)``.
    """
    normalize = transforms.Normalize(IMAGENET_MEAN, IMAGENET_STD)
    train = transforms.Compose(
        [
            transforms.RandomResizedCrop(224),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            normalize,
        ]
    )
    val = transforms.Compose(
        [
            transforms.Resize(256),
            transforms.CenterCrop(224),
            transforms.ToTensor(),
            normalize,
        ]
    )
    return train, val


def cifar10_datasets(root: str, download: bool) -> tuple[Dataset, Dataset]:
    """CIFAR-10 train (50,000) and test (10,000) sets; the test set serves as validation.

    Args:
        root: torchvision CIFAR-10 folder (holds ``cifar-10-batches-py/``).
        download: download into ``root`` if missing.

    Returns:
        ``(train, val)`` with items ``(x: float32 (3, 32, 32), y: int)``.
    """
    train_tf, val_tf = cifar10_transforms()
    root_path = str(Path(root).expanduser())
    train = datasets.CIFAR10(root_path, train=True, transform=train_tf, download=download)
    val = datasets.CIFAR10(root_path, train=False, transform=val_tf, download=download)
    return train, val


def imagenet_datasets(root: str) -> tuple[Dataset, Dataset]:
    """ImageNet as two ImageFolders, ``root/train`` and ``root/val`` (one subfolder per class).

    Args:
        root: directory holding ``train/`` and ``val/``.

    Returns:
        ``(train, val)`` with items ``(x: float32 (3, 224, 224), y: int)``.
    """
    train_tf, val_tf = imagenet_transforms()
    base = Path(root).expanduser()
    train = datasets.ImageFolder(str(base / "train"), transform=train_tf)
    val = datasets.ImageFolder(str(base / "val"), transform=val_tf)
    return train, val
