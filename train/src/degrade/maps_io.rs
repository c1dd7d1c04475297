//! Files for a degraded pair: LR and HR as PNG, the maps as safetensors.
