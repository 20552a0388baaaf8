"""The Siamese polar network: backbone, neck, depth-wise correlation, polar head."""
