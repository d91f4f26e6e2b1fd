"""Image datasets read with torchvision: CIFAR-10 and ImageNet (Sec. 4 of Assran et al. 2019)."""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Callable
from pathlib import Path

from torch.utils.data import Dataset
from torchvision import datasets, transforms

log = logging.getLogger(__name__)

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR10_FILES = (
    *(f"data_batch_{i}" for i in range(1, 6)),
    "test_batch",
    "batches.meta",
)

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


def cifar10_present(root: str | Path) -> bool:
    """Every file of the extracted CIFAR-10 archive is in ``root/cifar-10-batches-py/``."""
    folder = Path(root).expanduser() / CIFAR10_FOLDER
    return all((folder / name).is_file() for name in CIFAR10_FILES)


def _torchvision_download(root: str) -> None:
    datasets.CIFAR10(root, train=True, download=True)  # one archive holds both splits


def ensure_cifar10(root: str | Path, download: Callable[[str], None] | None = None) -> bool:
    """Download CIFAR-10 into ``root`` unless it is there: one process at a time, under an OS
    lock on ``root/.download.lock``, so concurrent callers (ranks, jobs) download it once.

    Args:
        root: the torchvision CIFAR-10 folder.
        download: the download itself (default: torchvision's); tests pass a stand-in.

    Returns:
        True if this call downloaded it, False if it was already there.
    """
    base = Path(root).expanduser()
    if cifar10_present(base):
        return False
    base.mkdir(parents=True, exist_ok=True)
    with (base / ".download.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if cifar10_present(base):  # another process downloaded it while this one waited
            return False
        log.info("downloading CIFAR-10 into %s", base)
        (download or _torchvision_download)(str(base))
    if not cifar10_present(base):
        raise RuntimeError(
            f"data.root={root}: the CIFAR-10 download left no complete {CIFAR10_FOLDER}/ there; "
            "remove the folder and try again, or download it by hand"
        )
    return True


def cifar10_datasets(root: str, download: bool) -> tuple[Dataset, Dataset]:
    """CIFAR-10 train (50,000) and test (10,000) sets; the test set serves as validation.

    Args:
        root: torchvision CIFAR-10 folder (holds ``cifar-10-batches-py/``).
        download: download into ``root`` if missing (once, under a lock: see
            :func:`ensure_cifar10`; the local launcher does it before forking the ranks).

    Returns:
        ``(train, val)`` with items ``(x: float32 (3, 32, 32), y: int)``.
    """
    train_tf, val_tf = cifar10_transforms()
    root_path = str(Path(root).expanduser())
    if download:
        ensure_cifar10(root_path)
    train = datasets.CIFAR10(root_path, train=True, transform=train_tf, download=False)
    val = datasets.CIFAR10(root_path, train=False, transform=val_tf, download=False)
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
