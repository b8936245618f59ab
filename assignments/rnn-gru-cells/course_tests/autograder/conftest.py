import sys

sys.path.append("mytorch")
sys.path.append("hw3")
