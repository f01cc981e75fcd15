"""The only TensorFlow code in d3q: model, devices and the learner process."""
