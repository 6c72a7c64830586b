namespace Runtime.Nn.Tests;
public class ProjectTests { [Fact] public void Builds() => Assert.Equal("Runtime.Nn", Runtime.Nn.NnInfo.Name); }
