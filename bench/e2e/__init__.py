"""The end-to-end benchmark of issue 7: the real stack, one mailing, every figure."""
