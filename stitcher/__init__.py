"""stitcher: batch identity stitching for product-analytics events."""

__version__ = "0.1.0"
