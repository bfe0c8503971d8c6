"""Small helpers shared across convolab (Keras's ``keras.utils`` lives in ``convolab.keras.utils``)."""
