"""One `create_*_tab(studio, ...)` per tab: it declares the tab's components, wires its events and
returns the components other tabs or the interface need, by name."""
