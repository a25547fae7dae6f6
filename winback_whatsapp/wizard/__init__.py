from . import winback_composer
