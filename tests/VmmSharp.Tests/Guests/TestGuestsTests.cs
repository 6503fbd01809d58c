using Xunit;

namespace VmmSharp.Tests.Guests;

public class TestGuestsTests
{
    [Fact]
    public void BuildsAllGuestsAsElf32()
    {
        foreach (var path in new[] { TestGuests.MultibootKernel, TestGuests.PvhKernel, TestGuests.MarkerKernel, TestGuests.VirtioKernel })
        {
            var bytes = File.ReadAllBytes(path);
            Assert.True(bytes.Length > 52, path);
            Assert.Equal(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F', 1 }, bytes[..5]);
        }
    }

    [Fact]
    public void SecondUseReturnsSameFolder()
    {
        Assert.Equal(TestGuests.OutputDirectory, TestGuests.OutputDirectory);
        Assert.StartsWith(Path.GetTempPath(), TestGuests.OutputDirectory, StringComparison.Ordinal);
    }
}
