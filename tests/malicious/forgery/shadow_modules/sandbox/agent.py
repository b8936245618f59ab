print("HIJACKED", __name__)
raise RuntimeError(f"HIJACKED: {__name__} was imported from the handin")
