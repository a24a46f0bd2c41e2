print("radgrid-worker")
