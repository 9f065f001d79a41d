"""The plugin as a patch series against pip's own source tree: README.rst,
"Proposing the plugin to pip", says how to export, apply and test it."""
