print("vecgo: pending")
