using LoraBridge.Engine;

namespace LoraBridge.Engine.Tests;

public sealed class ImageSizeTests
{
    [Theory]
    [InlineData("512x768", 512, 768)]
    [InlineData("1024X0", 1024, 0)]
    [InlineData(" 64x64 ", 64, 64)]
    [InlineData("0x0", 0, 0)]
    public void ParsesWidthAndHeight(string text, int w, int h) => Assert.Equal((w, h), ImageSize.Parse(text));

    [Theory]
    [InlineData("")]
    [InlineData("512")]
    [InlineData("512x")]
    [InlineData("x512")]
    [InlineData("512 x 512")]
    [InlineData("-8x8")]
    [InlineData("+8x8")]
    [InlineData("8x8x8")]
    [InlineData("8.0x8")]
    [InlineData("99999999999x8")]
    public void RefusesEverythingElse(string text) => Assert.Null(ImageSize.Parse(text));
}
