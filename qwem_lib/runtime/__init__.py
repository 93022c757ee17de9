"""The run infrastructure: errors, caching, atomic outputs, memory, devices, progress
and run folders (checkpoints, history).  Nothing here knows about corpora or the
paper's objects.
"""
