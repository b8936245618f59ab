# Multiple choice: answer each with one letter.

# Q1. An RNNCell with input_size 10 and hidden_size 20 has how many parameters?
#     (a) 620  (b) 640  (c) 400  (d) 220
question_1 = None

# Q2. In a GRU, which gate decides how much of h_{t-1} is carried straight into h_t?
#     (a) the reset gate r  (b) the update gate z  (c) the candidate n  (d) none
question_2 = None

# Q3. Backpropagation through time over T steps of one RNNCell adds up, for dW_hh,
#     (a) the last step's gradient only  (b) one gradient per step  (c) T^2 gradients
question_3 = None
