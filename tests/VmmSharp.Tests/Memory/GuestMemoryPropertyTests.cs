using CsCheck;
using VmmSharp.Memory;

namespace VmmSharp.Tests.Memory;

/// <summary>
/// GuestMemory's bounds against a byte-array model of the same address space: every access either lies wholly in
/// backed (and, for a write, writable) memory and does exactly what it says, or fails and changes nothing.
/// </summary>
public sealed class GuestMemoryPropertyTests
{
    private const ulong Page = GuestMemory.PageSize;

    // Two RAM regions with a hole between them, a ROM right after the second, then nothing.
    private static readonly GuestRegionSpec[] Regions =
        [new(0, 2 * Page), new(4 * Page, 2 * Page), new(6 * Page, Page, ReadOnly: true)];

    private const ulong SpaceEnd = 8 * Page;

    private enum Kind
    {
        Read,
        Write,
        TryRead,
        TryWrite,
        Fill,
        GetSpan,
    }

    private readonly record struct Access(Kind Kind, ulong Address, int Length, byte Seed);

    // Addresses near region edges are where the bugs are: mostly anywhere in the space, sometimes just below 2^64.
    private static readonly Gen<Access> AnyAccess = Gen.Select(
        Gen.Enum<Kind>(),
        Gen.Frequency((6, Gen.ULong[0, SpaceEnd]), (1, Gen.ULong[0, 64].Select(d => ulong.MaxValue - d))),
        Gen.Frequency((3, Gen.Int[0, 16]), (2, Gen.Int[0, (int)(3 * Page)])),
        Gen.Byte,
        (kind, address, length, seed) => new Access(kind, address, length, seed));

    [Fact]
    public void Every_access_succeeds_wholly_inside_backed_memory_or_fails_without_changing_anything()
    {
        AnyAccess.Array[1, 25].Sample(accesses =>
        {
            using var memory = new GuestMemory(Regions);
            var model = new byte[SpaceEnd];
            // A ROM's contents come from the host side.
            memory.Regions[2].HostSpan(0, (int)Page).Fill(0xc3);
            model.AsSpan((int)(6 * Page), (int)Page).Fill(0xc3);

            foreach (Access a in accesses)
            {
                Apply(memory, model, a);
                AssertSameContents(memory, model);
            }
        });
    }

    private static void Apply(GuestMemory memory, byte[] model, Access a)
    {
        byte[] data = new byte[a.Length];
        for (int i = 0; i < data.Length; i++)
        {
            data[i] = (byte)(a.Seed + i);
        }
        bool write = a.Kind is Kind.Write or Kind.TryWrite or Kind.Fill;
        bool allowed = Allowed(a.Address, (ulong)a.Length, write);
        switch (a.Kind)
        {
            case Kind.Read:
                byte[] read = new byte[a.Length];
                if (allowed)
                {
                    memory.Read(a.Address, read);
                    Assert.Equal(model.AsSpan((int)Math.Min(a.Address, SpaceEnd), a.Length).ToArray(), read);
                }
                else
                {
                    Assert.Throws<GuestMemoryException>(() => memory.Read(a.Address, read));
                }
                break;
            case Kind.TryRead:
                byte[] tried = new byte[a.Length];
                Assert.Equal(allowed, memory.TryRead(a.Address, tried));
                if (allowed)
                {
                    Assert.Equal(model.AsSpan((int)Math.Min(a.Address, SpaceEnd), a.Length).ToArray(), tried);
                }
                break;
            case Kind.Write:
                if (allowed)
                {
                    memory.Write(a.Address, data);
                }
                else
                {
                    Assert.Throws<GuestMemoryException>(() => memory.Write(a.Address, data));
                }
                break;
            case Kind.TryWrite:
                Assert.Equal(allowed, memory.TryWrite(a.Address, data));
                break;
            case Kind.Fill:
                data.AsSpan().Fill(a.Seed);
                if (allowed)
                {
                    memory.Fill(a.Address, (ulong)a.Length, a.Seed);
                }
                else
                {
                    Assert.Throws<GuestMemoryException>(() => memory.Fill(a.Address, (ulong)a.Length, a.Seed));
                }
                break;
            case Kind.GetSpan:
                // A direct view must lie within one region: the span is that region's bytes, nothing around them.
                GuestRegionSpec? region = RegionAt(a.Address);
                bool inOne = region is { } r && (ulong)a.Length <= r.GuestAddress + r.Size - a.Address;
                if (inOne)
                {
                    Assert.Equal(model.AsSpan((int)a.Address, a.Length).ToArray(), memory.GetSpan(a.Address, a.Length).ToArray());
                }
                else
                {
                    Assert.Throws<GuestMemoryException>(() => memory.GetSpan(a.Address, a.Length));
                }
                return;
            default:
                throw new InvalidOperationException($"no case for {a.Kind}");
        }
        if (write && allowed && a.Length > 0)
        {
            data.CopyTo(model, (int)a.Address);
        }
    }

    /// <summary>The model's rule: every byte backed, none read-only for a write, and the range does not wrap.</summary>
    private static bool Allowed(ulong address, ulong length, bool write)
    {
        if (address + length < address)
        {
            return false;
        }
        for (ulong at = address; at < address + length;)
        {
            GuestRegionSpec? region = RegionAt(at);
            if (region is not { } r || (write && r.ReadOnly))
            {
                return false;
            }
            at = r.GuestAddress + r.Size;
        }
        return true;
    }

    private static GuestRegionSpec? RegionAt(ulong address)
    {
        foreach (GuestRegionSpec r in Regions)
        {
            if (r.GuestAddress <= address && address - r.GuestAddress < r.Size)
            {
                return r;
            }
        }
        return null;
    }

    private static void AssertSameContents(GuestMemory memory, byte[] model)
    {
        foreach (GuestRegion r in memory.Regions)
        {
            Assert.True(r.HostSpan(0, (int)r.Size).SequenceEqual(model.AsSpan((int)r.GuestAddress, (int)r.Size)),
                $"region {r} differs from the model");
        }
    }
}
