"""pbgan: lifelong learning of image-conditioned GANs with Piggyback GAN."""

__version__ = "0.1.0"
