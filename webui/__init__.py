"""DialogSum Studio's Gradio interface: one module per tab under `components/`, composed by
`interface.create_interface`. The work itself is done by `summarizer.studio`."""

from .interface import create_interface

__all__ = ["create_interface"]
