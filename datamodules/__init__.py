"""Datamodules: the embedded synthetic tasks, the pix2pix / CycleGAN image folders, and the
public datasets' download tool."""

DIRECTIONS = ("AtoB", "BtoA")  # a task's direction: AtoB learns A -> B, BtoA swaps input and target
