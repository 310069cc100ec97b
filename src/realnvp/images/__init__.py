"""Images: multi-scale RealNVP on pixels, dequantisation, bits per dimension."""
