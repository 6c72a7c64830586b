namespace Runtime.Vision.Tests;
public class ProjectTests { [Fact] public void Builds() => Assert.Equal("Runtime.Vision", typeof(Runtime.Vision.VisionInfo).Namespace); }
