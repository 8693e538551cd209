"""Disentangled multimodal sentiment analysis models for Hugging Face ``transformers``.

Importing the package registers every method with the Auto classes, and marks each class for remote
code so that saved checkpoints carry their modelling files (``auto_map``) and load with
``AutoModel.from_pretrained(path, trust_remote_code=True)`` where this package is not installed.
"""

from transformers import AutoConfig, AutoModel

from .configuration_derl import DERLConfig
from .configuration_dlf import DLFConfig
from .configuration_dmd import DMDConfig
from .configuration_fdmer import FDMERConfig
from .configuration_misa import MISAConfig
from .configuration_tsda import TSDAConfig
from .configuration_tridira import TriDiRAConfig
from .modeling_derl import DERLModel
from .modeling_dlf import DLFModel
from .modeling_dmd import DMDModel
from .modeling_fdmer import FDMERModel
from .modeling_misa import MISAModel
from .modeling_tsda import TSDAModel
from .modeling_tridira import TriDiRAModel

#: method name -> (config class, model class)
METHODS = {
    "misa": (MISAConfig, MISAModel),
    "dlf": (DLFConfig, DLFModel),
    "dmd": (DMDConfig, DMDModel),
    "derl": (DERLConfig, DERLModel),
    "tsda": (TSDAConfig, TSDAModel),
    "fdmer": (FDMERConfig, FDMERModel),
    "tridira": (TriDiRAConfig, TriDiRAModel),
}

for _config_class, _model_class in METHODS.values():
    AutoConfig.register(_config_class.model_type, _config_class, exist_ok=True)
    AutoModel.register(_config_class, _model_class, exist_ok=True)
    _config_class.register_for_auto_class()
    _model_class.register_for_auto_class("AutoModel")

__all__ = [
    "METHODS", "DLFConfig", "DLFModel", "DMDConfig", "DMDModel", "FDMERConfig", "FDMERModel", "MISAConfig", "MISAModel",
    "TriDiRAConfig", "TriDiRAModel",
    "DERLConfig", "DERLModel", "TSDAConfig", "TSDAModel",
]
