"""Services every layer may use: the typed config, checkpoint files, image reading, devices and precision.

Nothing here imports another part of awing, so schemas, method, data, engine and the user's surface can
all depend on it.
"""
