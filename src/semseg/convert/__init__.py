"""Foreign checkpoints (torchvision, mmsegmentation 1.x, and the authors' releases of HRNet,
PSPNet, EncNet and DeepLab v2) mapped onto semseg models, loaded strictly, and saved as semseg
checkpoints; see ``docs/convert.md``.

Example::

    from semseg.convert import convert_file
    converted = convert_file("deeplabv3_resnet50_coco-cd0a2569.pth", "torchvision")
    converted.model  # a SegmentationModel with torchvision's weights
"""

from semseg.convert.convert import Converted, convert_file, get_format, save_converted
from semseg.convert.formats import FORMATS
from semseg.convert.read import read_checkpoint_file, state_dict_of

__all__ = [
    "FORMATS",
    "Converted",
    "convert_file",
    "get_format",
    "read_checkpoint_file",
    "save_converted",
    "state_dict_of",
]
