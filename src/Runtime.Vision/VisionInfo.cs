namespace Runtime.Vision;
/// <summary>Images, data sets, transforms, evaluation and drawing for detection and segmentation.</summary>
public static class VisionInfo { public const string Name = "Runtime.Vision"; }
