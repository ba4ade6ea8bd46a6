namespace LoraBridge.Python.Tests;

[Collection("python")]
public sealed class TensorTests(PythonFixture fx)
{
    private PythonBridge Bridge => fx.Bridge;

    [Fact]
    public async Task BytesGoIntoATensorAndComeBackOut()
    {
        var before = await Bridge.GetTensorCountAsync();
        var data = Enumerable.Range(0, 512 * 300).Select(i => (float)(i % 1000) * 0.5f).ToArray();
        var h = await Bridge.CreateTensorAsync([512, 300]);
        var info = await Bridge.GetTensorInfoAsync(h);
        Assert.Equal(new long[] { 512, 300 }, info.Shape);
        Assert.Equal("float32", info.DType);
        Assert.Equal("cpu", info.Device);
        Assert.Equal(data.Length * 4L, info.Bytes);

        await Bridge.WriteTensorAsync<float>(h, data);
        Assert.Equal(data.Sum(x => (double)x), await Bridge.SumTensorAsync(h), 6);

        await Bridge.ScaleTensorAsync(h, -2);
        var back = new float[data.Length];
        await Bridge.ReadTensorAsync<float>(h, back);
        Assert.Equal(data.Select(x => -2 * x), back);

        Assert.True(await Bridge.ReleaseTensorAsync(h));
        Assert.False(await Bridge.ReleaseTensorAsync(h));
        Assert.Equal(before, await Bridge.GetTensorCountAsync());
    }

    [Fact]
    public async Task OtherDTypesCrossAsRawBytes()
    {
        var h = await Bridge.CreateTensorAsync([4], TensorDType.Int64);
        await Bridge.WriteTensorAsync<long>(h, new long[] { 1, -2, long.MaxValue, 4 });
        var back = new long[4];
        await Bridge.ReadTensorAsync<long>(h, back);
        Assert.Equal(new long[] { 1, -2, long.MaxValue, 4 }, back);
        await Bridge.ReleaseTensorAsync(h);
    }

    [Fact]
    public async Task SizeMismatchIsRejectedWithBothSizes()
    {
        var h = await Bridge.CreateTensorAsync([10]);
        var w = await Assert.ThrowsAsync<ArgumentException>(() => Bridge.WriteTensorAsync<float>(h, new float[9]));
        Assert.StartsWith($"tensor {h.Id} holds 40 bytes but 36 bytes were given", w.Message);
        var r = await Assert.ThrowsAsync<ArgumentException>(() => Bridge.ReadTensorAsync<float>(h, new float[11]));
        Assert.StartsWith($"tensor {h.Id} holds 40 bytes but the destination has 44", r.Message);
        await Bridge.ReleaseTensorAsync(h);
    }

    [Fact]
    public async Task UnknownHandleIsAPythonKeyErrorNamingIt()
    {
        var ex = await Assert.ThrowsAsync<PythonCallException>(() => Bridge.SumTensorAsync(new TensorHandle(987654)));
        Assert.Equal("KeyError", ex.PythonType);
        Assert.Contains("no tensor with handle 987654", ex.PythonMessage);
    }
}
