print("radgrid-bench")
