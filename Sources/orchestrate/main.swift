print("orchestrate")
