using VmmSharp.Arch.X86;
using VmmSharp.Memory;

namespace VmmSharp.Tests.Boot;

internal static class BootTestMemory
{
    /// <summary>Guest RAM laid out as the x86 machine lays it out.</summary>
    public static GuestMemory Ram(ulong mib) => new(Layout.RamRegions(mib << 20));

    public static byte[] ReadBytes(this GuestMemory memory, ulong address, int length)
    {
        byte[] bytes = new byte[length];
        memory.Read(address, bytes);
        return bytes;
    }
}
