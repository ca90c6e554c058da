"""The model server: ONNX Runtime behind the Open Inference Protocol (KServe V2) REST API.

Heavy dependencies (onnxruntime, numpy, uvicorn, redis, prometheus_client, mlflow) are imported only by the
modules that need them, so importing this package stays cheap.
"""
