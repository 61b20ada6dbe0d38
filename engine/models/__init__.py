"""Model builders: built-in networks, torchvision ResNet-18 and user factories."""
