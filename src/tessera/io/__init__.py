"""Where pixels enter and leave Tessera: image.py (formats, EXIF, modes, sizes, atomic no-follow
writes). Everything else works on RGB uint8 (H, W, 3) arrays and bool (H, W) masks."""
