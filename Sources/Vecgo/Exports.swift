// The façade's users need the metric and metadata types without importing the layers below.
@_exported public import IndexCore
@_exported public import SegmentFormat
