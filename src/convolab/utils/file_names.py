"""The file-name endings of convolab's model files, in a module that imports nothing.

``convolab.saving`` checks names against them when it writes, and ``ModelCheckpoint`` when it
is constructed (so a wrong name fails before training, not after the first epoch); kept here
so that the callbacks need nothing from the saving package (no import cycle).
"""

#: file-name endings save_model / save_weights accept; the first is the default
MODEL_SUFFIXES = (".convolab", ".keras", ".safetensors")
DEFAULT_SUFFIX = MODEL_SUFFIXES[0]
