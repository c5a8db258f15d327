"""Hello Bank Pay (示例银行扫码付): a worked example of a third-party yinyi channel plugin."""

__version__ = "0.1.0"
