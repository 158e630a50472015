// The users supabase/seed.sql creates, so the stack can print their tokens and tests can use them.
export const DEMO_ORG_ID = "11111111-1111-4111-8111-111111111111";
export const OTHER_ORG_ID = "22222222-2222-4222-8222-222222222222";

export interface DemoUser {
  key: "owner" | "admin" | "member" | "other_admin" | "loner";
  id: string;
  email: string;
  role: "owner" | "admin" | "member" | null;
  organizationId: string | null;
}

export const DEMO_USERS: readonly DemoUser[] = [
  {
    key: "owner",
    id: "a0000000-0000-4000-8000-000000000001",
    email: "owner@demo.local",
    role: "owner",
    organizationId: DEMO_ORG_ID,
  },
  {
    key: "admin",
    id: "a0000000-0000-4000-8000-000000000002",
    email: "admin@demo.local",
    role: "admin",
    organizationId: DEMO_ORG_ID,
  },
  {
    key: "member",
    id: "a0000000-0000-4000-8000-000000000003",
    email: "member@demo.local",
    role: "member",
    organizationId: DEMO_ORG_ID,
  },
  {
    key: "other_admin",
    id: "b0000000-0000-4000-8000-000000000001",
    email: "admin@other.local",
    role: "admin",
    organizationId: OTHER_ORG_ID,
  },
  {
    key: "loner",
    id: "c0000000-0000-4000-8000-000000000001",
    email: "loner@demo.local",
    role: null,
    organizationId: null,
  },
];

export function demoUser(key: DemoUser["key"]): DemoUser {
  const user = DEMO_USERS.find((u) => u.key === key);
  if (!user) throw new Error(`no demo user ${key}`);
  return user;
}
